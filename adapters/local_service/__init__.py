"""The embedded local retake service: fal and RunComfy protocols over loopback, with an offline preview engine."""
