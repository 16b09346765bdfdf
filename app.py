"""Decoding Playground web app: generate with a decoding method and watch every step, or replay a stored run.

    python app.py [--host 127.0.0.1] [--port 7860] [--db playground.db]

The app itself is the package playground/app/ (one module per tab); its CSS and JavaScript are in static/.
"""

from playground.app import build_app, css_text, main, whole

__all__ = ["build_app", "css_text", "main", "whole"]

if __name__ == "__main__":
    main()
