"""The Qt panel (PySide6). It arrives with the panel issue; nothing in the core or adapters depends on it."""
