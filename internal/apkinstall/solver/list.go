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

func (l *nameList) insertBefore(n, at *name) {
	ln, la := l.sel(n), l.sel(at)
	ln.list, ln.prev, ln.next = l, la.prev, at
	if la.prev != nil {
		l.sel(la.prev).next = n
	} else {
		l.head = n
	}
	la.prev = n
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
