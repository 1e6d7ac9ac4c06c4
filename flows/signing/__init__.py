"""Image signature verification (the guide's 1.1.2) and the key managers behind it."""
