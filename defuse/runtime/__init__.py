"""Infrastructure every layer may use: atomic writes, devices and threads, progress callbacks, memory limits."""
