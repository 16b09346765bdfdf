"""Step events to what a person sees: chips, HTML and Plotly figures, one module per family of methods; live and replay share them."""
