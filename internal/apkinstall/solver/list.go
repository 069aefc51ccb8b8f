package solver

// link is an intrusive list membership; apk keeps names on doubly linked lists and the solver's
// tie-breaking depends on their exact order, so the same structure is kept here.
type link struct {
	prev, next *name
	list       *nameList
}

// nameList is a doubly linked list of names threaded through one link field.
type nameList struct {
	head, tail *name
	sel        func(*name) *link
}

func dirtyLink(n *name) *link { return &n.dirty }
func unresLink(n *name) *link { return &n.unres }

func (l *nameList) empty() bool { return l.head == nil }

func (l *nameList) pushBack(n *name) {
	ln := l.sel(n)
	ln.list, ln.prev, ln.next = l, l.tail, nil
	if l.tail != nil {
		l.sel(l.tail).next = n
	} else {
		l.head = n
	}
	l.tail = n
}

func (l *nameList) remove(n *name) {
	ln := l.sel(n)
	if ln.prev != nil {
		l.sel(ln.prev).next = ln.next
	} else {
		l.head = ln.next
	}
	if ln.next != nil {
		l.sel(ln.next).prev = ln.prev
	} else {
		l.tail = ln.prev
	}
	*ln = link{}
}

func (l *nameList) popFront() *name {
	n := l.head
	if n != nil {
		l.remove(n)
	}
	return n
}

// nameHeap is a queue ordered like apk's sorted unresolved lists: highest order_id first and,
// among equal ids, the most recently queued first (apk inserts before the first name whose
// order_id is not larger). A heap keeps that order in O(log n) instead of apk's linear insert,
// which matters for repositories with tens of thousands of packages.
type nameHeap struct {
	items []*name
	seq   uint64
}

func (h *nameHeap) less(i, j int) bool {
	a, b := h.items[i], h.items[j]
	if a.orderID != b.orderID {
		return a.orderID > b.orderID
	}
	return a.heapSeq > b.heapSeq
}

func (h *nameHeap) swap(i, j int) {
	h.items[i], h.items[j] = h.items[j], h.items[i]
	h.items[i].heapIdx = i
	h.items[j].heapIdx = j
}

func (h *nameHeap) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !h.less(i, p) {
			return
		}
		h.swap(i, p)
		i = p
	}
}

func (h *nameHeap) down(i int) {
	for {
		l := 2*i + 1
		if l >= len(h.items) {
			return
		}
		c := l
		if r := l + 1; r < len(h.items) && h.less(r, l) {
			c = r
		}
		if !h.less(c, i) {
			return
		}
		h.swap(i, c)
		i = c
	}
}

func (h *nameHeap) push(n *name) {
	h.seq++
	n.heapSeq = h.seq
	n.heap = h
	n.heapIdx = len(h.items)
	h.items = append(h.items, n)
	h.up(n.heapIdx)
}

func (h *nameHeap) remove(n *name) {
	i := n.heapIdx
	last := len(h.items) - 1
	if i != last {
		h.swap(i, last)
	}
	h.items = h.items[:last]
	if i != last {
		h.down(i)
		h.up(i)
	}
	n.heap = nil
}

func (h *nameHeap) pop() *name {
	if len(h.items) == 0 {
		return nil
	}
	n := h.items[0]
	h.remove(n)
	return n
}
