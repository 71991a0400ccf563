"""Keras's summary table: one row per layer (type), output shape, parameters; "Connected to" for graphs."""

from __future__ import annotations

from .. import backend


def _shape(layer) -> str:
    shape = layer.output_shape
    return str(shape) if not isinstance(shape, list) else ", ".join(str(s) for s in shape)


def summary_lines(model, expand_nested: bool = False, show_trainable: bool = False) -> list[str]:
    """The table's lines. ``expand_nested`` adds each nested model's layers under it ("   └ " per level);
    ``show_trainable`` adds Keras's "Trainable" column: Y, N, or - for a layer without weights."""
    graph = model._graph_for(False)
    sequential = not any(layer is t.node.layer for t in graph.inputs for layer in model.operations)
    rows = []

    def add(layer, level: int, connected: bool):
        prefix = "   " * level + "└ " if level else ""
        row = [f"{prefix}{layer.name} ({type(layer).__name__})", _shape(layer), f"{layer.count_params():,}"]
        if not sequential:
            sources = [f"{t.node.layer.name}[{_call(graph, t.node)}][{t.index}]"
                       for n in graph.nodes if n.layer is layer for t in n.inputs] if connected else []
            row.append(", ".join(sources) if sources else "-")
        if show_trainable:
            row.append(("Y" if layer.trainable else "N") if layer.weights else "-")
        rows.append(row)
        if expand_nested and getattr(layer, "operations", None):
            for inner in layer.operations:
                add(inner, level + 1, connected=False)

    for layer in model.operations:
        add(layer, 0, connected=True)
    columns = ["Layer (type)", "Output Shape", "Param #"] + ([] if sequential else ["Connected to"])
    widths = [max(33, *(len(r[0]) + 2 for r in rows)), max(24, *(len(r[1]) + 2 for r in rows)), 15]
    if not sequential:
        widths.append(max(20, *(len(r[3]) + 2 for r in rows)))
    if show_trainable:
        columns.append("Trainable")
        widths.append(11)
    trainable = sum(p.value.size for p in model.trainable_parameters)
    total = model.count_params()
    itemsize = backend.xp.dtype(backend.floatx()).itemsize

    def line(left, mid, right, fill):
        return left + mid.join(fill * w for w in widths) + right

    def row_text(cells, sep):
        return sep + sep.join(
            (c + " ").rjust(w) if i == 2 else c.center(w) if show_trainable and i == len(widths) - 1
            else (" " + c).ljust(w) for i, (c, w) in enumerate(zip(cells, widths))
        ) + sep

    out = [f'Model: "{model.name}"', line("┏", "┳", "┓", "━"), row_text(columns, "┃"), line("┡", "╇", "┩", "━")]
    for i, r in enumerate(rows):
        out.append(row_text(r, "│"))
        if i < len(rows) - 1:
            out.append(line("├", "┼", "┤", "─"))
    out.append(line("└", "┴", "┘", "─"))
    for label, count in (("Total", total), ("Trainable", trainable), ("Non-trainable", total - trainable)):
        out.append(f" {label} params: {count:,} ({_human_bytes(count * itemsize)})")
    return out


def _call(graph, node) -> int:
    if node.is_input:
        return 0
    return [n for n in graph.nodes if n.layer is node.layer].index(node)


def _human_bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.2f} {unit}"
        n /= 1024
