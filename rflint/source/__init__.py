"""Reading the user's Python source, torch-free: where each integer literal was written,
which functions return models, which files import which."""
