# chaosnet serve in a container: a drop-in for ghcr.io/shopify/toxiproxy.
#
# Same flags as toxiproxy-server (its entrypoint takes them), same API and
# default port, plus chaosnet's extensions. Build it from a checkout:
#
#     python3 -m pip install --target build/docker-site .
#     docker build -t chaosnet .
#     docker run --network host chaosnet -host=127.0.0.1 -port=8474
#
# The image holds what pip installed on the build host (chaosnet and its
# dependencies), so PYTHON_IMAGE must have the same Python minor version and
# C library as that pip; no step runs inside the image, so any base with a
# `python3` on PATH works (also one built locally, without a registry, as CI does).
ARG PYTHON_IMAGE=python:3.11-slim
FROM ${PYTHON_IMAGE}
COPY build/docker-site/ /opt/chaosnet/
ENV PYTHONPATH=/opt/chaosnet PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
EXPOSE 8474
ENTRYPOINT ["python3", "-m", "chaosnet.cli", "serve"]
# As Toxiproxy's image: the API on every interface of the container.
CMD ["-host=0.0.0.0"]
