"""sensors: radiometric conventions of SAR and optical products (no diffusion here)."""
