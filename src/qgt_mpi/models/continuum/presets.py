"""Published parameter sets of the continuum presets, as data (theory §2.5a).

Every set is a plain dict of the deck keys it fills in; a key given in the deck overrides
the set's value. The conventions the numbers are quoted in are those of theory §2.5a
(ψ enters the bottom layer as cos(g_j·r + ψ), j = 1, 3, 5; the tunnelling is
w(1 + e^{−i g_2·r} + e^{−i g_3·r}); valence-band energies in the electron picture, the
top valence band highest). The sets are quoted as published; whether each source's ψ has
the sign of this convention could not be verified from a stored source, and the MoTe₂ sets
disagree on the Chern sign of the top band (theory §2.5a, "Sources"): give ``psi`` to choose.
"""

from __future__ import annotations

HBAR2_2ME = 38.0998  # ħ²/2m_e in meV·nm²

# Twisted homobilayer TMDs, valley K (Wu et al., PRL 122, 086402 (2019) form of the model).
# a: monolayer lattice constant (nm); mstar: valence-band mass (m_e); V, w: meV; psi: degrees.
TMD_SETS: dict[str, dict[str, float]] = {
    # C. Wang et al., PRL 132, 036501 (2024): tMoTe2, large-scale DFT with relaxation
    "wang2024": {"a": 0.352, "mstar": 0.6, "V": 20.75, "psi": 107.7, "w": -23.82},
    # A. P. Reddy, F. Alsallom, Y. Zhang, T. Devakul, L. Fu, PRB 108, 085117 (2023): tMoTe2
    "reddy2023": {"a": 0.352, "mstar": 0.62, "V": 7.5, "psi": -100.0, "w": -11.3},
    # F. Wu, T. Lovorn, E. Tutuc, I. Martin, A. H. MacDonald, PRL 122, 086402 (2019): tMoTe2
    "wu2019": {"a": 0.3472, "mstar": 0.62, "V": 8.0, "psi": -89.6, "w": -8.5},
    # T. Devakul, V. Crépel, Y. Zhang, L. Fu, Nat. Commun. 12, 6730 (2021): tWSe2
    "devakul2021": {"a": 0.3317, "mstar": 0.43, "V": 9.0, "psi": 128.0, "w": 18.0},
}

TMD_SOURCES: dict[str, str] = {
    "wang2024": "Wang et al., PRL 132, 036501 (2024), tMoTe2",
    "reddy2023": "Reddy et al., PRB 108, 085117 (2023), tMoTe2",
    "wu2019": "Wu et al., PRL 122, 086402 (2019), tMoTe2",
    "devakul2021": "Devakul et al., Nat. Commun. 12, 6730 (2021), tWSe2",
}

# Bistritzer-MacDonald defaults (theory §2.5): the deck defaults of kind = "bm_continuum".
BM_DEFAULTS: dict[str, float] = {"w0": 88.0, "w1": 110.0, "hbar_v": 594.4, "a": 0.246}

# TBG sets of kind = "tbg_continuum" (params; also usable as bm_continuum deck keys). Relaxed:
# M. Koshino, N. F. Q. Yuan, T. Koretsune, M. Ochi, K. Kuroki, L. Fu, PRX 8, 031087 (2018):
# u = 79.7 meV (AA), u' = 97.5 meV (AB), hbar v / a = 2.1354 eV with a = 0.246 nm, i.e.
# hbar v = 525.3 meV nm.
BM_SETS: dict[str, dict[str, float]] = {
    "bm2011": {"w0": 88.0, "w1": 110.0, "hbar_v": 594.4},  # the bm_continuum defaults
    "koshino2018": {"w0": 79.7, "w1": 97.5, "hbar_v": 2135.4 * 0.246},
}
