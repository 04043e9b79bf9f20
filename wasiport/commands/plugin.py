"""`wasiport run PLUGIN.wasm`: the proxy-wasm half of the run command.

`wasiport run` hands a module over to this module when it exports a
`proxy_abi_version_*` marker: options describe the plugin's configuration and
the requests a gateway would send it, or a scenario file (--scenario) does,
with expectations checked after the run.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from wasiport.errors import UserError

PLUGIN_EPILOG = """\
proxy-wasm plugins (a module exporting proxy_abi_version_0_2_*):
  the module runs as a gateway would run it: _initialize, the root context,
  proxy_on_vm_start (not with --host apisix), proxy_on_configure with
  --plugin-config, ticks at the period the plugin sets, then each --request
  through the request, (upstream) response and done/log/delete callbacks.
  Log lines go to stderr as [LEVEL ctx=ID] message; one summary line per
  request goes to stdout. --header, --body and --response-* apply to every
  --request (--upstream HOST:PORT sends them on to a real server instead);
  for different requests and checked expectations use --scenario.

  wasiport run plugin.wasm --host apisix --plugin-config '{"key": "v"}' \\
      --request 'POST /orders' --header 'content-type: text/plain' --body 'hello'
  wasiport run plugin.wasm --scenario plugin-scenario.toml

  exit status: 0 ok; 1 a --scenario expectation failed (a diff-like report
  on stderr); 3 the plugin refused to start (proxy_on_vm_start or
  proxy_on_configure returned false); 4 it trapped or panicked while
  starting; 134 it trapped or panicked later; 124 --timeout; 2 bad input.
  Scenario format: docs/proxy-wasm-scenarios.md.
"""


def add_plugin_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("proxy-wasm plugins")
    group.add_argument("--host", choices=("spec", "apisix"), default=None,
                       help="behave as the proxy-wasm spec says (default) or as APISIX's wasm-nginx-module does")
    group.add_argument("--plugin-config", metavar="FILE|TEXT", help="the plugin's configuration (a file's bytes, or the text)")
    group.add_argument("--vm-config", metavar="FILE|TEXT", help="the VM configuration proxy_on_vm_start reads")
    group.add_argument("--request", action="append", default=[], metavar="'METHOD PATH'", help="send this request (repeatable)")
    group.add_argument("--header", action="append", default=[], metavar="'NAME: VALUE'", help="a request header (repeatable)")
    group.add_argument("--body", action="append", default=[], metavar="TEXT", help="a request body chunk (repeatable)")
    group.add_argument("--response-status", type=int, default=200, metavar="CODE", help="the upstream's status (default 200)")
    group.add_argument("--response-header", action="append", default=[], metavar="'NAME: VALUE'", help="an upstream response header")
    group.add_argument("--response-body", action="append", default=[], metavar="TEXT", help="an upstream response body chunk")
    group.add_argument("--upstream", metavar="HOST:PORT", help="send each request on to this real HTTP server (instead of --response-*)")
    group.add_argument("--ticks", type=int, default=None, metavar="N", help="proxy_on_tick calls after configure (default 1; periods over 1 s wait 1 s)")
    group.add_argument("--scenario", type=Path, metavar="FILE.toml", help="requests and expectations from a scenario file")


def plugin_options_given(args: argparse.Namespace) -> list[str]:
    """The plugin-only options on the command line (an error for a command module)."""
    given = []
    for name in ("plugin_config", "vm_config", "scenario", "host", "ticks", "upstream"):
        if getattr(args, name, None) is not None:
            given.append("--" + name.replace("_", "-"))
    for name in ("request", "header", "body", "response_header", "response_body"):
        if getattr(args, name, []):
            given.append("--" + name.replace("_", "-"))
    return given


def config_bytes(value: str | None) -> bytes:
    """--plugin-config FILE|TEXT: a file's bytes when such a file exists, else the text itself."""
    if value is None:
        return b""
    candidate = Path(value)
    try:
        if len(value) < 4096 and candidate.is_file():
            return candidate.read_bytes()
    except OSError as err:
        raise UserError(f"cannot read {value}: {err.strerror or err}") from None
    return value.encode()


def parse_request_line(text: str) -> tuple[str, str]:
    method, _, path = text.strip().partition(" ")
    path = path.strip()
    if not method or not path.startswith("/") or " " in path:
        raise UserError(f"--request {text!r}: expected 'METHOD /path'")
    return method.upper(), path


def plugin_run_from_args(args: argparse.Namespace):  # -> PluginRun
    from wasiport.runtime.proxywasm import HostProfile, HttpRequest, PluginRun, UpstreamResponse, header_pairs

    if args.ticks is not None and args.ticks < 0:
        raise UserError("--ticks must be 0 or more")
    if not 100 <= args.response_status <= 999:
        raise UserError("--response-status must be a number from 100 to 999")
    response = UpstreamResponse(
        args.response_status, header_pairs(args.response_header), tuple(chunk.encode() for chunk in args.response_body)
    )
    headers = header_pairs(args.header)
    body = tuple(chunk.encode() for chunk in args.body)
    requests = tuple(HttpRequest(*parse_request_line(line), headers=headers, body=body, response=response) for line in args.request)
    return PluginRun(
        plugin_config=config_bytes(args.plugin_config),
        vm_config=config_bytes(args.vm_config),
        profile=HostProfile(args.host or "spec"),
        requests=requests,
        ticks=1 if args.ticks is None else args.ticks,
        upstream=_upstream_option(args.upstream),
    )


def _upstream_option(value: str | None) -> str | None:
    from wasiport.runtime.proxywasm.host import parse_upstream

    if value is not None and parse_upstream(value) is None:
        raise UserError(f"--upstream {value!r}: expected HOST:PORT")
    return value


def scenario_conflicts(args: argparse.Namespace) -> list[str]:
    return [option for option in plugin_options_given(args) if option not in ("--scenario", "--host", "--ticks", "--upstream")]


def run_plugin_command(args: argparse.Namespace, config) -> int:  # config: RunConfig
    from dataclasses import replace

    from wasiport.runtime.proxywasm import HostProfile, run_plugin
    from wasiport.runtime.proxywasm.scenario import load_scenario, render_mismatches, run_scenario

    if args.scenario is None:
        result = run_plugin(args.module, plugin_run_from_args(args), config)
        _print_result(result)
        return result.exit_code
    conflicts = scenario_conflicts(args)
    if conflicts:
        raise UserError(f"--scenario describes the run; drop {', '.join(conflicts)}")
    scenario = load_scenario(args.scenario)
    if args.host is not None:
        scenario = replace(scenario, run=replace(scenario.run, profile=HostProfile(args.host)))
    if args.ticks is not None:
        scenario = replace(scenario, run=replace(scenario.run, ticks=args.ticks))
    if args.upstream is not None:
        scenario = replace(scenario, run=replace(scenario.run, upstream=_upstream_option(args.upstream)))
    checked = run_scenario(args.module, scenario, config)
    _print_result(checked.result)
    if checked.mismatches:
        print(f"wasiport: scenario {args.scenario} failed ({len(checked.mismatches)} mismatch(es)):", file=sys.stderr)
        print(render_mismatches(checked.mismatches), file=sys.stderr)
    elif not checked.result.exit_code:
        print(f"scenario {args.scenario}: {len(scenario.requests)} request(s), all expectations met", flush=True)
    return checked.exit_code


def _print_result(result) -> None:  # result: PluginResult
    from wasiport.runtime.proxywasm import summary_lines

    for line in summary_lines(result.report):
        print(line, flush=True)
    _print_notes(result)
    if result.message:
        print(f"wasiport: {result.message}", file=sys.stderr)
        if result.outcome.host_error:
            print(f"wasiport: the trap comes from a bug in wasiport's host code:\n{result.outcome.host_error}", file=sys.stderr)


def _print_notes(result) -> None:
    report, outcome = result.report, result.outcome
    if report.unimplemented:
        print(f"wasiport: note: answered UNIMPLEMENTED: {', '.join(report.unimplemented)}", file=sys.stderr)
    if outcome.unsupported_imports:
        print(f"wasiport: note: the plugin imports {', '.join(outcome.unsupported_imports)}, "
              "which wasiport run does not provide (calling one traps)", file=sys.stderr)
    for note in report.notes:
        print(f"wasiport: note: {note}", file=sys.stderr)
