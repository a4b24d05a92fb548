"""Training: the FRD-UVAD loop, the C2FPL stage, and the one scoring path for evaluations and videos."""
