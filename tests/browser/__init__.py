"""The app driven in headless Chromium (marker ``browser``)."""
