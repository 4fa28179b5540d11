"""Handlers behind the Gradio app (`app.py`): plain functions over `AppServices`, no gradio at import."""
