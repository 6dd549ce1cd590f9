"""Adapters: everything that touches the outside (media, services, file hosting, timeline files)."""
