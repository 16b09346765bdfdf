"""The comparison tabs' runs and verdicts, without Gradio."""
