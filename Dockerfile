# CPU image that runs the project's two commands: `docker run IMAGE` runs the tests; `docker run IMAGE make demo`.
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends make git && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY . .
# PIP_INDEX_URL / PIP_EXTRA_INDEX_URL may be passed as build args to pick the CPU build of torch==2.13.0.
ARG PIP_EXTRA_INDEX_URL=
ENV PIP_EXTRA_INDEX_URL=${PIP_EXTRA_INDEX_URL}
RUN make install
CMD ["make", "test"]
