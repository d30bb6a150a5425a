"""What pages show that is not Streamlit: chart specifications, images, sentences. Each module is
Streamlit-free and light to import, so a page's first render pays only for what it shows."""
