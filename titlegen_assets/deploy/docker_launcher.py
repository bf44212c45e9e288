"""A Docker run launcher that sends runs needing a GPU to the GPU image with the NVIDIA runtime.

dagster-docker's ``DockerRunLauncher`` has one image and one set of container kwargs for every run (and no per-run
override, dagster-io/dagster#30651). This subclass decides per run: a run is a GPU run when its tags say so
(``titlegen/gpu: "true"``), or when any step it executes belongs to an op tagged GPU — read from the run's job
snapshot, so "Materialize all" in the UI routes correctly without anyone adding a tag. GPU runs get ``gpu_image``
and ``gpu_container_kwargs`` (``device_requests`` for all GPUs by default); other runs the plain configuration.

Configured in ``dagster.yaml``::

    run_launcher:
      module: titlegen_assets.deploy.docker_launcher
      class: GpuAwareDockerRunLauncher
      config: {image: ..., gpu_image: ..., network: ..., env_vars: [...], container_kwargs: {...}}
"""

from __future__ import annotations

from typing import Any

from dagster import Field, Permissive, StringSource
from dagster._core.launcher import LaunchRunContext, ResumeRunContext
from dagster._core.storage.dagster_run import DagsterRun
from dagster._grpc.types import ExecuteRunArgs, ResumeRunArgs
from dagster_docker import DockerRunLauncher
from dagster_docker.container_context import DockerContainerContext
from dagster_docker.utils import DOCKER_CONFIG_SCHEMA

from titlegen_assets.deploy.gpu import GPU_TAG

ALL_NVIDIA_GPUS = {"device_requests": [{"driver": "nvidia", "count": -1, "capabilities": [["gpu"]]}]}


class GpuAwareDockerRunLauncher(DockerRunLauncher):
    def __init__(self, inst_data=None, gpu_image: str | None = None, gpu_container_kwargs: dict | None = None, **kwargs):
        self.gpu_image = gpu_image
        self.gpu_container_kwargs = gpu_container_kwargs if gpu_container_kwargs is not None else ALL_NVIDIA_GPUS
        super().__init__(inst_data=inst_data, **kwargs)

    @classmethod
    def config_type(cls):
        return {
            **DOCKER_CONFIG_SCHEMA,
            "gpu_image": Field(StringSource, is_required=False,
                               description="Image for runs that execute a GPU asset (default: the plain image)."),
            "gpu_container_kwargs": Field(Permissive(), is_required=False,
                                          description="Extra docker-py containers.create kwargs for GPU runs "
                                          "(default: device_requests for every NVIDIA GPU)."),
        }

    def is_gpu_run(self, run: DagsterRun) -> bool:
        """True when the run is tagged GPU, or one of the steps it executes is a GPU op in its job snapshot."""
        if run.tags.get(GPU_TAG) == "true":
            return True
        if not run.job_snapshot_id:
            return False
        snapshot = self._instance.get_job_snapshot(run.job_snapshot_id)
        executed = set(run.step_keys_to_execute) if run.step_keys_to_execute else None
        gpu_ops = {op.name for op in snapshot.node_defs_snapshot.op_def_snaps if op.tags.get(GPU_TAG) == "true"}
        invocations = {node.node_name: node.node_def_name for node in snapshot.dep_structure_snapshot.node_invocation_snaps}
        return any(op in gpu_ops and (executed is None or node in executed) for node, op in invocations.items())

    def get_container_context(self, dagster_run: DagsterRun) -> DockerContainerContext:
        context = super().get_container_context(dagster_run)
        if self.is_gpu_run(dagster_run):
            context = context.merge(DockerContainerContext(container_kwargs=self.gpu_container_kwargs))
        return context

    def _image_for(self, run: DagsterRun, job_code_origin) -> str:
        return self.gpu_image if self.gpu_image and self.is_gpu_run(run) else self._get_docker_image(job_code_origin)

    def launch_run(self, context: LaunchRunContext) -> None:
        self._launch(context.dagster_run, context.job_code_origin, resume=False)

    def resume_run(self, context: ResumeRunContext) -> None:
        self._launch(context.dagster_run, context.job_code_origin, resume=True)

    def _launch(self, run: DagsterRun, job_code_origin: Any, resume: bool) -> None:
        args = ResumeRunArgs if resume else ExecuteRunArgs
        command = args(job_origin=job_code_origin, run_id=run.run_id, instance_ref=self._instance.get_ref()).get_command_args()
        self._launch_container_with_command(run, self._image_for(run, job_code_origin), command)
