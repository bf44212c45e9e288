"""Where runs execute: the GPU tag and pool every GPU step carries, and the GPU-aware Docker run launcher."""
