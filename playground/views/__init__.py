"""Step events to what a person sees: chips, HTML and Plotly figures, one module per family of methods; the live view
and the replay share them."""
