# Decoding Playground in a container (a Docker Space, or any host): serves on port 7860 as a non-root user.
#   docker build -t decoding-playground . && docker run -p 7860:7860 decoding-playground
# tests/test_deploy.py checks what can be checked without building it (no container tool runs on this project's
# machines): the base, the lock, what is copied, the port, the user and the command.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    GRADIO_ANALYTICS_ENABLED=False \
    GRADIO_SERVER_NAME=0.0.0.0 \
    GRADIO_SERVER_PORT=7860

# Spaces run the container as uid 1000; give that user a home for the run database and caches.
RUN useradd --create-home --uid 1000 user
WORKDIR /home/user/app

# The lock, not requirements.txt's ranges: the exact versions, hashed, that CI passed with. It pins the CPU build of
# torch (torch==2.13.0+cpu), which pip finds on PyTorch's CPU index; the default index would pull several GB of CUDA
# libraries. The lock's `--find-links /opt/wheels` is absent here and pip ignores it with a warning.
COPY --chown=user requirements.lock .
RUN pip install --extra-index-url https://download.pytorch.org/whl/cpu -r requirements.lock

# Only what the app runs on (.dockerignore keeps the rest out of the build context).
COPY --chown=user app.py .
COPY --chown=user playground ./playground
COPY --chown=user static ./static
COPY --chown=user assets ./assets
USER user
ENV HOME=/home/user \
    PLAYGROUND_DB=/home/user/playground.db \
    HF_HOME=/home/user/.cache/huggingface

EXPOSE 7860
CMD ["python", "app.py"]
