"""The Gradio web app, one module per tab; `app.py` at the top is its entry point."""
