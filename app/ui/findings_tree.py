"""The findings table: one row per finding (grouped by side and hierarchy) with its probability
bar and its decision in words, sortable by any column and filtered to abnormal findings on
request. The words come from ``app.findings.wording``, as in the report and the CLI."""

from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets
from PySide6.QtCore import Qt

from app.findings.types import AnalysisResult, Finding
from app.findings.wording import Decision, decide_in

FINDING_ROLE = Qt.ItemDataRole.UserRole + 1
SORT_ROLE = Qt.ItemDataRole.UserRole + 2  # per column: the value a header click sorts by
NO_CALL_GREY = QtGui.QColor(140, 140, 140)  # a no-call result's probabilities and calls
ABNORMAL_RED = QtGui.QColor(220, 70, 60)
NORMAL_BLUE = QtGui.QColor(70, 150, 220)
COLUMNS = ("Finding", "Probability", "Decision")
# a probability is read highest first; names and decisions (abnormal first) in ascending order
FIRST_ORDER = {0: Qt.SortOrder.AscendingOrder, 1: Qt.SortOrder.DescendingOrder,
               2: Qt.SortOrder.AscendingOrder}  # fmt: skip


class ProbabilityBar(QtWidgets.QWidget):
    """A bar for one probability with a tick at the decision threshold; red only for an
    abnormal call, blue otherwise, grey when the result makes no call."""

    def __init__(self, finding: Finding, decision: Decision, parent=None) -> None:
        super().__init__(parent)
        self.finding = finding
        self.decision = decision
        self.no_call = decision.no_call  # outside the training domain: drawn grey, no decision
        self.setMinimumSize(80, 18)
        self.setToolTip(
            f"p = {finding.probability:.3f}; threshold {finding.threshold:.2f} -> {decision.text}"
        )

    def paintEvent(self, ev) -> None:  # noqa: N802
        p = QtGui.QPainter(self)
        r = self.rect().adjusted(1, 2, -1, -2)
        p.fillRect(r, QtGui.QColor(60, 60, 60))
        f = self.finding
        w = int(r.width() * min(max(f.probability, 0.0), 1.0))
        colour = ABNORMAL_RED if self.decision.abnormal else NORMAL_BLUE
        if self.no_call:
            colour = NO_CALL_GREY
        p.fillRect(QtCore.QRect(r.left(), r.top(), w, r.height()), colour)
        tx = r.left() + int(r.width() * min(max(f.threshold, 0.0), 1.0))
        p.setPen(QtGui.QPen(QtGui.QColor(255, 255, 255), 2))
        p.drawLine(tx, r.top() - 2, tx, r.bottom() + 2)
        p.setPen(QtGui.QColor(255, 255, 255))
        p.drawText(r.adjusted(4, 0, -4, 0), Qt.AlignmentFlag.AlignVCenter, f"{f.probability:.2f}")
        p.end()


class FindingItem(QtWidgets.QTreeWidgetItem):
    """A row that sorts by ``SORT_ROLE`` (numbers as numbers), not by its shown text."""

    def __lt__(self, other: QtWidgets.QTreeWidgetItem) -> bool:
        column = self.treeWidget().sortColumn() if self.treeWidget() else 0
        a, b = self.data(column, SORT_ROLE), other.data(column, SORT_ROLE)
        if a is None or b is None:
            return self.text(column) < other.text(column)
        return a < b


class FindingsTree(QtWidgets.QTreeWidget):
    """Findings of one result; ``set_result`` fills it, ``set_abnormal_only`` filters it."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setHeaderLabels(list(COLUMNS))
        self.setColumnWidth(0, 105)
        self.setColumnWidth(1, 80)
        self.header().setStretchLastSection(True)
        self.header().setSectionsClickable(True)
        self.header().setSortIndicatorShown(False)  # shown once the reader sorts
        self.header().sectionClicked.connect(self._on_header)
        self.setToolTip("Click a column title to sort by it")
        self.result: AnalysisResult | None = None
        self.abnormal_only = False
        self._sort: tuple[int, Qt.SortOrder] | None = None  # None: the result's own order

    # ---- content ----------------------------------------------------------------
    def set_result(self, result: AnalysisResult | None) -> None:
        self.result = result
        self.clear()
        if result is None:
            return
        # a side with an abnormal finding first (the fractured hip), then by name
        abnormal = {f.side for f in result.findings if decide_in(result, f).abnormal}
        sides = sorted({f.side for f in result.findings}, key=lambda s: (s not in abnormal, s))
        roots: dict[str, QtWidgets.QTreeWidgetItem] = {}
        for n, side in enumerate(sides):
            if side:
                item = FindingItem(self, [f"{side.capitalize()} side"])
                item.setFirstColumnSpanned(True)
                for col in range(len(COLUMNS)):
                    item.setData(col, SORT_ROLE, (n,))  # sides keep their order
                roots[side] = item
            else:
                roots[side] = self.invisibleRootItem()
        items: dict[tuple[str, str], QtWidgets.QTreeWidgetItem] = {}
        pending = list(enumerate(result.findings))
        # parents first: a finding whose parent is not (yet) placed waits a round
        for _ in range(len(pending) + 1):
            waiting = []
            for n, f in pending:
                parent_key = (f.side, f.parent)
                if (
                    f.parent
                    and parent_key not in items
                    and any(g.label == f.parent and g.side == f.side for g in result.findings)
                ):
                    waiting.append((n, f))
                    continue
                parent = items.get(parent_key, roots[f.side])
                items[(f.side, f.label)] = self._add_finding(parent, f, n)
            pending = waiting
            if not pending:
                break
        self.expandAll()
        self._apply_sort()
        self._apply_filter()

    def _add_finding(self, parent, f: Finding, order: int) -> QtWidgets.QTreeWidgetItem:
        assert self.result is not None
        decision = decide_in(self.result, f)
        # the subject names a finding better than its label ("patient", not "patient_overall")
        item = FindingItem(parent, [f.subject or f.label, "", decision.words])
        item.setData(0, FINDING_ROLE, f)
        item.setData(0, SORT_ROLE, (f.label.lower(), order))
        item.setData(1, SORT_ROLE, (float(f.probability), -order))
        item.setData(2, SORT_ROLE, (0 if decision.abnormal else 1, decision.words, order))
        item.setToolTip(2, decision.text)
        where = f" ({f.group})" if f.group else ""
        click = "; click to centre the views on its region" if f.region_id else ""
        item.setToolTip(0, f"{f.label}{where}{click}")
        if decision.no_call:
            for col in (0, 2):
                item.setForeground(col, QtGui.QBrush(NO_CALL_GREY))
            item.setToolTip(2, self.result.no_call)
        elif decision.abnormal:
            item.setForeground(2, QtGui.QBrush(ABNORMAL_RED))
            bold = item.font(2)
            bold.setBold(True)
            item.setFont(2, bold)
        self.setItemWidget(item, 1, ProbabilityBar(f, decision))
        return item

    def finding_items(self) -> list[QtWidgets.QTreeWidgetItem]:
        """Every finding's row in the order shown (hidden ones included)."""
        out = []
        it = QtWidgets.QTreeWidgetItemIterator(self)
        while it.value():
            if it.value().data(0, FINDING_ROLE) is not None:
                out.append(it.value())
            it += 1
        return out

    # ---- sorting ------------------------------------------------------------------
    def _on_header(self, column: int) -> None:
        """First click: the column's natural order; second: reversed; third: as produced."""
        if self._sort is None or self._sort[0] != column:
            self._sort = (column, FIRST_ORDER.get(column, Qt.SortOrder.AscendingOrder))
        elif self._sort[1] == FIRST_ORDER.get(column, Qt.SortOrder.AscendingOrder):
            other = (
                Qt.SortOrder.DescendingOrder
                if self._sort[1] == Qt.SortOrder.AscendingOrder
                else Qt.SortOrder.AscendingOrder
            )
            self._sort = (column, other)
        else:
            self._sort = None
        self.set_result(self.result)  # rebuilt: the unsorted order is the result's own

    def _apply_sort(self) -> None:
        if self._sort is None:
            self.header().setSortIndicatorShown(False)
            return
        column, order = self._sort
        self.header().setSortIndicatorShown(True)
        self.sortItems(column, order)  # sorts siblings under each parent: the hierarchy stays
        # sortItems moves rows: their bar widgets must be set again on the moved items
        assert self.result is not None
        for item in self.finding_items():
            f = item.data(0, FINDING_ROLE)
            if self.itemWidget(item, 1) is None:
                self.setItemWidget(item, 1, ProbabilityBar(f, decide_in(self.result, f)))

    # ---- filtering ---------------------------------------------------------------
    def set_abnormal_only(self, on: bool) -> None:
        self.abnormal_only = bool(on)
        self._apply_filter()

    def _apply_filter(self) -> None:
        """Abnormal findings only: a row stays when it or a row under it is abnormal (so a
        subtype keeps its type and side above it)."""

        def visit(item: QtWidgets.QTreeWidgetItem) -> bool:
            keep_child = False
            for n in range(item.childCount()):
                keep_child |= visit(item.child(n))
            f = item.data(0, FINDING_ROLE)
            own = f is not None and self.result is not None and decide_in(self.result, f).abnormal
            keep = (not self.abnormal_only) or own or keep_child
            if item is not self.invisibleRootItem():
                item.setHidden(not keep)
            return keep

        visit(self.invisibleRootItem())


def _hidden(item: QtWidgets.QTreeWidgetItem) -> bool:
    while item is not None:
        if item.isHidden():
            return True
        item = item.parent()
    return False
