"""What methods run on: the cached LM, sampling, sub-layer gates, tree attention, the diffusion canvas and the DAG."""
