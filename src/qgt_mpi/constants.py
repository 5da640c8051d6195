"""Physical constants and unit conventions (theory §1)."""

K_B_MEV_PER_K = 0.08617333262  # Boltzmann constant [meV/K]
K_B_OVER_E_UV_PER_K = 86.17333262  # k_B/e [μV/K]
