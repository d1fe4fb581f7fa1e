"""The web app: video I/O, the inference session, rendering, plots and the page layout."""
