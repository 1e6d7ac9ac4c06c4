"""Where the bits come from: one module per import method."""
