"""`erarm robots` and `erarm cameras`: the installed driver plugins and their options."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table

from erarm.agent.cli.common import JsonOpt, app, out_console, print_json


def _show(kind: str, json_output: bool) -> None:
    from erarm.robots.registry import describe

    drivers = describe(kind)
    if json_output:
        print_json([d.model_dump() for d in drivers])
        return
    console = out_console()
    for driver in drivers:
        console.print(f"[bold]{driver.name}[/bold]  {escape(driver.summary)}  "
                      f"[dim]({driver.package}, {driver.entry_point})[/dim]")
        if driver.problem:
            console.print(f"  [yellow]cannot be loaded: {escape(driver.problem)}[/yellow]")
        if driver.options:
            table = Table("option", "type", "default", "meaning", box=None, pad_edge=False,
                          padding=(0, 2, 0, 2))
            for option in driver.options:
                table.add_row(option.name, escape(option.type),
                              "required" if option.default is None else escape(option.default),
                              escape(option.help))
            console.print(table)
    flag = "--robot" if kind == "robot" else "--camera"
    console.print(f"[dim]choose one with {flag} NAME and set its options with {flag}-opt "
                  f"KEY=VALUE, or under \\[{kind}] in a --config file[/dim]")


@app.command()
def robots(json_output: JsonOpt = False) -> None:
    """The robot drivers installed (the `erarm.robots` entry points) and their options."""
    _show("robot", json_output)


@app.command()
def cameras(json_output: JsonOpt = False) -> None:
    """The camera drivers installed (the `erarm.cameras` entry points) and their options."""
    _show("camera", json_output)
