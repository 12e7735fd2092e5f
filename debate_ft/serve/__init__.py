"""`python -m debate_ft serve RUN_DIR`: serve a run's trained society over an OpenAI-compatible HTTP API.

    python -m debate_ft serve runs/demo --port 8000
    curl localhost:8000/v1/chat/completions -H 'Content-Type: application/json' \\
      -d '{"model": "society", "messages": [{"role": "user", "content": "What is 3+4*2?"}]}'

Models: `base`, each trained adapter (gen0, crit0, ...), and `society` (a whole debate; the reply is the majority
answer, the transcript is in the extra field `debate`). `backend=openai backend.base_url=http://HOST:PORT/v1`
points the project itself at it.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from debate_ft.errors import DebateFTError


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m debate_ft serve", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path, help="a run directory (its config.yaml and iter<k>/adapters/)")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (0.0.0.0: every one)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--iteration", type=int, help="serve the society after this iteration (default: the last)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--api-key-env", help="require the API key held by this environment variable")
    parser.add_argument("--vllm-command", action="store_true", help="print the matching `vllm serve` command, exit")
    args = parser.parse_args(argv)
    if not 1 <= args.port <= 65535:
        parser.error(f"--port {args.port} is not a port (1..65535)")
    try:
        if args.vllm_command:
            from debate_ft.serve.society import vllm_command

            print(vllm_command(args.run_dir, args.iteration))
            return 0
        import uvicorn

        from debate_ft.serve.app import create_app
        from debate_ft.serve.society import ServedSociety

        api_key = os.environ.get(args.api_key_env) if args.api_key_env else None
        if args.api_key_env and not api_key:
            raise DebateFTError(f"--api-key-env {args.api_key_env}: that environment variable is not set")
        served = ServedSociety.load(args.run_dir, args.iteration, args.device)
    except ImportError as error:
        print(f"error: serve needs {error.name}: pip install -e '.[serve]'", file=sys.stderr)
        return 2
    except DebateFTError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"serving {', '.join(served.models())} from {args.run_dir} (iteration {served.iteration}) "
          f"on http://{args.host}:{args.port}/v1", flush=True)  # fmt: skip
    uvicorn.run(create_app(served, api_key), host=args.host, port=args.port, log_level="warning")
    return 0
