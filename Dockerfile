# Slot decomposition studio on a GPU host:
#   docker build -t slot-studio .
#   docker run --gpus all -p 7860:7860 slot-studio
# The torch pin in requirements.txt resolves to the CUDA wheel here; the CUDA runtime image
# supplies the user-space driver libraries. Without a GPU the same image runs on the CPU.
FROM nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    GRADIO_SERVER_NAME=0.0.0.0 \
    GRADIO_SERVER_PORT=7860 \
    HF_HUB_OFFLINE=1 \
    PATH=/opt/venv/bin:$PATH

# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv curl \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/venv

# non-root user with uid 1000, as Hugging Face Spaces and most hosts expect
RUN useradd --create-home --uid 1000 user
WORKDIR /home/user/app

# the README's install step, verbatim
COPY requirements.txt .
RUN pip install -r requirements.txt

# code, bundled weights (baked in: the container never downloads them) and examples
COPY --chown=user:user app.py ./
COPY --chown=user:user app ./app
COPY --chown=user:user model ./model
COPY --chown=user:user weights ./weights
COPY --chown=user:user assets ./assets

USER 1000
EXPOSE 7860
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["curl", "-fsS", "http://localhost:7860/"]

# the README's run step
CMD ["python", "app.py"]
