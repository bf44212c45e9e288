"""How an asset says it needs a GPU: one tag read by the Docker run launcher, the K8s op config for Helm users."""

GPU_TAG = "titlegen/gpu"

#: Concurrency pool of the GPU steps; the Docker stack limits it to one step at a time (one GPU, one training).
GPU_POOL = "gpu"

#: Asset tags for GPU assets: the GPU-aware Docker run launcher routes any run that executes one to the GPU image.
GPU_ASSET_TAGS = {GPU_TAG: "true"}

#: Op tags for GPU steps (the training assets and the eval gate's checks): the Docker run launcher reads the GPU tag
#: from the job snapshot, and ``dagster-k8s/config`` requests one NVIDIA GPU when the k8s_job_executor runs the step.
GPU_OP_TAGS = {
    GPU_TAG: "true",
    "dagster-k8s/config": {"container_config": {"resources": {"limits": {"nvidia.com/gpu": "1"}}}},
}
