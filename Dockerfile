# Decoding Playground as a Hugging Face Space (Docker SDK): serves on port 7860 as a non-root user.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    GRADIO_SERVER_NAME=0.0.0.0 \
    GRADIO_SERVER_PORT=7860

# Spaces run the container as uid 1000; give that user a home for the run database and caches.
RUN useradd --create-home --uid 1000 user
WORKDIR /home/user/app

COPY --chown=user requirements.txt .
# The CPU build of torch: the default index would pull several GB of CUDA libraries.
RUN pip install --extra-index-url https://download.pytorch.org/whl/cpu -r requirements.txt

COPY --chown=user . .
USER user
ENV HOME=/home/user \
    PLAYGROUND_DB=/home/user/playground.db \
    HF_HOME=/home/user/.cache/huggingface

EXPOSE 7860
CMD ["python", "app.py"]
