"""Published reference results and benchmark recipes (data). Installed as `austack._resources.baselines`."""
