"""erarm as an MCP server (`erarm mcp`): the workcell's camera, perception, plan validation and
motion as tools any MCP client (an agent) can call, over stdio or streamable HTTP on loopback.

Every tool goes through erarm's own functions: `look` captures and perceives as a run's look
does (`perceive`, `locate_objects`), `point` and `detect` are `erarm.point` and `erarm.detect`,
`dry_run_plan` and `execute_plan` are `erarm.execute_plan` (the same parser, validation and
envelope as `erarm execute`, with `dry_run=True` for the first), `run_task` is `erarm.run_task`
(the orchestration of `erarm run`). Each of those calls gets its own run folder under the
server's folder, as the command line's runs do. `return_home`, the way back after a stop (a
plan's first look checks the calibration with the arm at home), is a two-step plan checked by
`validate_plan` and run by `execute`, as every plan is.

Motion (`execute_plan`, `run_task`, `return_home`) needs the operator's permission given when
the server starts (`allow_motion`): it stands for the command line's confirmation, on a
physical arm too (every plan is still validated in full first, and a physical arm's tool loop is
rehearsed in a twin first, as `erarm run` does). Without it those tools are refused; the others
work.

Threads. The workcell stays on the thread that opened it, the main thread: every look, question
to the brain and motion runs there, one at a time, as in `erarm run` and `erarm live`. The
protocol runs on a thread of its own. `stop` halts a running motion as Ctrl-C does: it raises
`erarm.agent.interrupts.Halt` in the main thread (`interrupts.halt_main`), so execution stops
the arm where it is through `stop_arm` and the run records it; the motion's tool call then
returns saying it was stopped. `status` reads the robot's state from the protocol's side while
a motion runs. Only one motion at a time: while one runs every other call that needs the
workcell is refused (`status` and `stop` answer).

The API key never crosses the protocol: no tool takes one, erarm reads it from the environment
as always, and every text a tool returns is redacted (`erarm.agent.redaction`). Every error is
one line in an `is_error` tool result, never a traceback.
"""
