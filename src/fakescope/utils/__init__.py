"""Small shared helpers (atomic writes, hashing, devices, seeding)."""
