"""Runs shared as files: one stored run as one self-contained HTML page that replays it offline (`page`), and a static
site of chosen runs (`gallery`). Above the views, which draw every step exactly as the app does; no Gradio here."""
