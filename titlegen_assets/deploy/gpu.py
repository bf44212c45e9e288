"""How an asset says it needs a GPU: one tag that puts it in the Docker stack's GPU code location, the pool that
runs one GPU step at a time, the K8s op config for Helm users."""

GPU_TAG = "titlegen/gpu"

#: Concurrency pool of the GPU steps; the Docker stack and the Helm values limit it to one (one GPU, one training).
GPU_POOL = "gpu"

#: Asset tags for GPU assets: what training_job selects.
GPU_ASSET_TAGS = {GPU_TAG: "true"}

#: Op tags for GPU steps (the training assets and the eval gate's checks): the GPU tag places the step in the Docker
#: stack's GPU code location (deploy/locations.py), and ``dagster-k8s/config`` requests one NVIDIA GPU when the
#: k8s_job_executor runs the step.
GPU_OP_TAGS = {
    GPU_TAG: "true",
    "dagster-k8s/config": {"container_config": {"resources": {"limits": {"nvidia.com/gpu": "1"}}}},
}
