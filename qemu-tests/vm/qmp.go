package vm

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// qmpClient is a minimal QEMU Machine Protocol client: one command at a time, events kept so
// that a wait started after the event was emitted still sees it.
type qmpClient struct {
	path   string
	exited <-chan struct{}

	mu        sync.Mutex
	conn      net.Conn
	responses chan qmpMessage
	events    []qmpMessage
	changed   chan struct{} // closed and replaced when an event arrives or the connection ends
	readErr   error
}

type qmpMessage struct {
	Return json.RawMessage `json:"return"`
	Error  *struct {
		Class string `json:"class"`
		Desc  string `json:"desc"`
	} `json:"error"`
	Event string         `json:"event"`
	Data  map[string]any `json:"data"`
	QMP   map[string]any `json:"QMP"`
}

func newQMP(path string, exited <-chan struct{}) *qmpClient {
	return &qmpClient{path: path, exited: exited, changed: make(chan struct{})}
}

// connect dials the socket (QEMU creates it shortly after start) and negotiates capabilities.
func (q *qmpClient) connect(ctx context.Context) error {
	q.mu.Lock()
	if q.conn != nil {
		q.mu.Unlock()
		return nil
	}
	q.mu.Unlock()
	var conn net.Conn
	for {
		var err error
		var d net.Dialer
		if conn, err = d.DialContext(ctx, "unix", q.path); err == nil {
			break
		}
		select {
		case <-q.exited:
			return fmt.Errorf("vm: qmp: %w", ErrExited)
		case <-ctx.Done():
			return fmt.Errorf("vm: qmp: connect %s: %w", q.path, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	q.mu.Lock()
	q.conn = conn
	q.responses = make(chan qmpMessage, 1)
	q.mu.Unlock()
	go q.read(conn)
	// The greeting is dropped by read (it has a "QMP" member); capabilities negotiation is the
	// first command.
	if _, err := q.execute(ctx, "qmp_capabilities", nil); err != nil {
		return fmt.Errorf("vm: qmp: capabilities: %w", err)
	}
	return nil
}

func (q *qmpClient) read(conn net.Conn) {
	sc := bufio.NewScanner(conn)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		var m qmpMessage
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			continue
		}
		switch {
		case m.QMP != nil:
		case m.Event != "":
			q.mu.Lock()
			q.events = append(q.events, m)
			close(q.changed)
			q.changed = make(chan struct{})
			q.mu.Unlock()
		default:
			q.responses <- m
		}
	}
	q.mu.Lock()
	q.readErr = sc.Err()
	if q.readErr == nil {
		q.readErr = errors.New("connection closed")
	}
	close(q.changed)
	q.changed = make(chan struct{})
	q.mu.Unlock()
	close(q.responses)
}

func (q *qmpClient) execute(ctx context.Context, command string, args map[string]any) ([]byte, error) {
	req := map[string]any{"execute": command}
	if args != nil {
		req["arguments"] = args
	}
	b, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	q.mu.Lock()
	conn, responses := q.conn, q.responses
	q.mu.Unlock()
	if _, err := conn.Write(append(b, '\n')); err != nil {
		return nil, fmt.Errorf("qmp %s: %w", command, err)
	}
	select {
	case m, ok := <-responses:
		if !ok {
			return nil, fmt.Errorf("qmp %s: connection closed", command)
		}
		if m.Error != nil {
			return nil, fmt.Errorf("qmp %s: %s: %s", command, m.Error.Class, m.Error.Desc)
		}
		return m.Return, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("qmp %s: %w", command, ctx.Err())
	}
}

// waitEvent waits for an event named name whose data satisfies match (any time since connect).
func (q *qmpClient) waitEvent(ctx context.Context, name string, match func(map[string]any) bool) error {
	for {
		q.mu.Lock()
		for _, e := range q.events {
			if e.Event == name && (match == nil || match(e.Data)) {
				q.mu.Unlock()
				return nil
			}
		}
		if q.readErr != nil {
			err := q.readErr
			q.mu.Unlock()
			return fmt.Errorf("qmp event %s: %w", name, err)
		}
		changed := q.changed
		q.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("qmp event %s: %w", name, ctx.Err())
		}
	}
}

func (q *qmpClient) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.conn != nil {
		q.conn.Close()
	}
}
