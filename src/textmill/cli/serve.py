"""Serving models and human evaluation: serve, humaneval create | invite | report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from ..errors import TextmillError
from .common import app, fail, load_safety, out, setup_logging


@app.command()
def serve(sources: Annotated[Optional[list[str]], typer.Argument(help="models to serve: run directories or pretrained "
                                                                      "sources, each as SOURCE or ID=SOURCE (its model id)")] = None,
          study: Annotated[Optional[Path], typer.Option(help="also serve this human evaluation study's rating page at /rate")] = None,
          host: Annotated[str, typer.Option(help="address to listen on; another than 127.0.0.1 reaches the network")] = "127.0.0.1",
          port: Annotated[int, typer.Option()] = 8000,
          api_key: Annotated[Optional[str], typer.Option(envvar="TEXTMILL_API_KEY",
                                                         help="clients must send `Authorization: Bearer KEY`")] = None,
          allowed_host: Annotated[Optional[list[str]], typer.Option(
              help="a host name the server answers besides the address it is bound to (repeat; other Host headers get a 400)")] = None,
          cors_origin: Annotated[Optional[list[str]], typer.Option(
              help="an origin whose web pages may call the API (repeat; e.g. https://app.example.com; * for any)")] = None,
          max_tokens: Annotated[int, typer.Option(help="the most tokens a request may ask for (chat's default)")] = 1024,
          max_n: Annotated[int, typer.Option(help="the most choices (n) per request")] = 8,
          max_batch: Annotated[int, typer.Option(help="rows one model decodes at once")] = 32,
          max_waiting: Annotated[int, typer.Option(help="requests waiting per model before a 429")] = 256,
          timeout: Annotated[float, typer.Option(help="seconds a request may take before a 504")] = 300.0,
          quantize: Annotated[Optional[str], typer.Option(help="gpt runs and pretrained models: bf16 or int4 weights")] = None,
          compile: Annotated[bool, typer.Option(help="compile the models' blocks (about 20 s once, then faster)")] = False,
          safety: Annotated[Optional[str], typer.Option(
              help="screen prompts (refused: 400) and outputs (masked or cut: finish_reason content_filter): "
                   "'default' or a policy file")] = None,
          verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False) -> None:
    """Serve models behind OpenAI's API: `GET /v1/models`, `POST /v1/completions`,
    `POST /v1/chat/completions` (streaming, n, stop, seed, logprobs), `/health` and `/metrics`, and a
    playground at `/`. Concurrent requests to a model share one decoding loop. With --study, invited raters
    judge a human evaluation study at `/rate` (links: `textmill humaneval invite`). Open without the API key:
    `/`, `/health` and `/rate`; requests for other host names, and from other sites' pages, are refused."""
    from ..serve.launch import serve as run_server

    setup_logging(verbose)
    try:
        run_server(sources or [], host, port, quantize, compile, study, allowed_host or [], api_key=api_key,
                   cors_origins=tuple(cors_origin or ()), max_tokens=max_tokens, max_n=max_n,
                   max_rows=max_batch, max_waiting=max_waiting, timeout=timeout, safety=load_safety(safety))
    except TextmillError as e:
        fail(e)


humaneval_app = typer.Typer(no_args_is_help=True, help="Human evaluation: build a blinded study, rate it at /rate, report it.")
app.add_typer(humaneval_app, name="humaneval")


@humaneval_app.command("create")
def humaneval_create(systems: Annotated[list[str], typer.Argument(help="NAME=PATH or PATH, each a JSONL file of "
                                                                       "{\"prompt\", \"text\"} rows or a model to generate with")],
                     study: Annotated[Path, typer.Option("--out", help="the study file (SQLite) to write")],
                     prompts_file: Annotated[Optional[Path], typer.Option("--prompts", help="models: one prompt per line")] = None,
                     max_new_tokens: Annotated[int, typer.Option(help="models: tokens per output")] = 60,
                     seed: Annotated[int, typer.Option(help="sampling, blinding and each rater's task order")] = 0,
                     chat: Annotated[bool, typer.Option(help="models: each prompt is a user message (instruct models)")] = False,
                     pairs: Annotated[bool, typer.Option(help="also ask which of two systems' outputs is better")] = True,
                     overwrite: Annotated[bool, typer.Option(help="replace an existing study (its ratings are lost)")] = False) -> None:
    """Build a study: every output is rated 1-5 for fluency, coherence and grammar, and every two
    systems' outputs for one prompt are compared (A/B), blinded and shuffled. Serve it with
    `textmill serve --study STUDY` and send raters to /rate."""
    from ..data import read_utf8
    from ..humaneval import create, read_jsonl_outputs
    from ..humaneval.study import Output
    from ..loading import load, split_named

    try:
        outputs, sources = [], {}
        prompts = [line for line in read_utf8(prompts_file).split("\n") if line.strip()] if prompts_file else None
        for spec in systems:
            name, path = split_named(spec)
            name = name or Path(path).stem
            if name in sources:
                raise TextmillError(f"two systems are named {name!r}; name them apart with NAME=PATH")
            sources[name] = path
            if path.endswith(".jsonl"):
                outputs += read_jsonl_outputs(Path(path), name)
                continue
            if not prompts:
                raise TextmillError(f"{path} is a model: pass --prompts FILE (one prompt per line) to generate its outputs")
            gen = load(path)
            texts = gen.generate(prompts, max_new_tokens=max_new_tokens, seed=seed, chat=chat)
            outputs += [Output(name, p, t) for p, t in zip(prompts, texts)]
        path = create(outputs, study, sources=sources, pairs=pairs, seed=seed, overwrite=overwrite)
    except TextmillError as e:
        fail(e)
    out.print(f"study: {path} ({len(outputs)} outputs of {len(sources)} systems); serve it with "
              f"`textmill serve --study {path}` and send each rater their link from `textmill humaneval invite {path} --rater NAME`")


@humaneval_app.command("invite")
def humaneval_invite(study: Annotated[Path, typer.Argument(help="a study file")],
                     rater: Annotated[list[str], typer.Option(help="a rater's name (repeat); each gets a link of their own")],
                     url: Annotated[str, typer.Option(help="where the study is served")] = "http://127.0.0.1:8000") -> None:
    """Print each rater's invitation link to the rating page. Only invited raters can judge a study: the
    link holds a token made from the rater's name and a secret kept in the study file."""
    from ..humaneval import invite

    try:
        links = invite(study, rater, url)
    except TextmillError as e:
        fail(e)
    for name, link in links.items():
        print(f"{name}\t{link}")


@humaneval_app.command("report")
def humaneval_report(study: Annotated[Path, typer.Argument(help="a study file")],
                     csv_dir: Annotated[Optional[Path], typer.Option(
                         "--csv", help="write the ratings, preferences and means as CSV files in this directory")] = None,
                     as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False) -> None:
    """Per-system means with 95% intervals, Krippendorff's alpha, pairwise win rates, Bradley-Terry."""
    from ..humaneval import CRITERIA, export_csv, report

    try:
        rep = report(study)
        written = export_csv(study, csv_dir) if csv_dir else []
    except TextmillError as e:
        fail(e)
    if as_json:
        print(json.dumps(rep, indent=2, ensure_ascii=False))
        return
    fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
    out.print(f"{rep['ratings']} ratings and {rep['preferences']} preferences from {len(rep['raters'])} raters "
              f"({rep['tasks']} tasks each)")
    table = Table("system", *(f"{c} (95% CI)" for c in CRITERIA), "n", "Bradley-Terry")
    for name, crit in rep["systems"].items():
        cells = [f"{fmt(v['mean'])} ({fmt(v['low'])}-{fmt(v['high'])})" for v in crit.values()]
        table.add_row(name, *cells, str(crit[CRITERIA[0]]["n"]), fmt((rep["bradley_terry"] or {}).get(name)))
    out.print(table)
    out.print("Krippendorff's alpha (ordinal): " + ", ".join(f"{c} {fmt(a)}" for c, a in rep["alpha"].items()))
    for p in rep["pairwise"]:
        out.print(f"{p['a']} vs {p['b']}: {p['wins_a']} wins, {p['wins_b']} losses, {p['ties']} ties "
                  f"(win rate {fmt(p['win_rate_a'])})")
    for path in written:
        out.print(f"written: {path}")
