package explorer

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/phalago/phala/api"
	"github.com/phalago/phala/client"
	"github.com/phalago/phala/crypto"
	"github.com/phalago/phala/internal/chainview"
)

// Handler returns the explorer's routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.home)
	mux.HandleFunc("GET /latest", s.latestFragment)
	mux.HandleFunc("GET /events", s.events)
	mux.HandleFunc("GET /tip", s.tipText)
	mux.HandleFunc("GET /block/{height}", s.block)
	mux.HandleFunc("GET /tx/{hash}", s.tx)
	mux.HandleFunc("GET /account/{addr}", s.account)
	mux.HandleFunc("GET /workers", s.workers)
	mux.HandleFunc("GET /worker/{id}", s.worker)
	mux.HandleFunc("GET /gatekeepers", s.gatekeepers)
	mux.HandleFunc("GET /contracts", s.contractList)
	mux.HandleFunc("GET /contract/{id}", s.contract)
	mux.HandleFunc("GET /queue", s.queue)
	mux.HandleFunc("GET /params", s.params)
	mux.HandleFunc("GET /search", s.search)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, http.StatusNotFound, fmt.Sprintf("no page %s: start from the home page or search", r.URL.Path))
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		mux.ServeHTTP(w, r)
		if d := time.Since(start); d > slowPage && r.URL.Path != "/events" { // a stream lasts
			s.log.Info("slow page", "path", r.URL.Path, "seconds", d.Seconds())
		}
	})
}

// slowPage: a page that takes longer is logged (proved reads wait about
// a block; much longer means a slow node).
const slowPage = 5 * time.Second

// page is what every template receives.
type page struct {
	Title   string
	ChainID string
	Tip     int64
	Data    any
}

// errorData is the error page's.
type errorData struct {
	Status  int
	Message string
}

func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name, title string, data any) {
	_, tip := s.recent()
	var buf bytes.Buffer
	if err := s.tmpl[name].ExecuteTemplate(&buf, "layout", page{Title: title, ChainID: s.c.ChainID(), Tip: tip, Data: data}); err != nil {
		s.log.Error("render page", "page", name, "path", r.URL.Path, "err", err)
		http.Error(w, "the explorer failed to render this page (its log says why)", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// fail renders an error page with a message for the user.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, status int, msg string) {
	s.render(w, r, status, "error", http.StatusText(status), errorData{Status: status, Message: msg})
}

// nodeFail renders an error of a read from the node: what the chain does
// not have is 404, a node too slow 504, anything else the node's fault
// (502): never the user's input, which is checked before.
func (s *Server) nodeFail(w http.ResponseWriter, r *http.Request, what string, err error) {
	switch {
	case errors.Is(err, client.ErrBeyondTip), errors.Is(err, client.ErrTxNotFound),
		errors.Is(err, api.ErrNotFound), errors.Is(err, client.ErrNoSuchContract):
		s.fail(w, r, http.StatusNotFound, fmt.Sprintf("%s: %v", what, err))
	case errors.Is(err, context.DeadlineExceeded):
		s.fail(w, r, http.StatusGatewayTimeout, fmt.Sprintf("%s: the node at %s did not answer in %s", what, s.node, s.cfg.ReadTimeout))
	default:
		s.log.Warn("read from the node", "what", what, "err", err)
		s.fail(w, r, http.StatusBadGateway, fmt.Sprintf("%s: the node at %s: %v", what, s.node, err))
	}
}

func (s *Server) ctx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), s.cfg.ReadTimeout)
}

// homeData is the home page's: the latest blocks and their transactions.
type homeData struct {
	Blocks     []chainview.Block
	Txs        []chainview.Tx
	TrustRoot  string
	Following  bool // false until the first block is checked
	BlockCount int
}

func (s *Server) homeData() homeData {
	blocks, _ := s.recent()
	d := homeData{Blocks: blocks, TrustRoot: s.c.TrustRoot(), Following: len(blocks) > 0, BlockCount: len(blocks)}
	for _, b := range blocks {
		d.Txs = append(d.Txs, b.Txs...)
	}
	if len(d.Txs) > 25 {
		d.Txs = d.Txs[:25]
	}
	return d
}

func (s *Server) home(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "home", "Latest blocks", s.homeData())
}

// latestFragment is the home page's live part, fetched by its script.
func (s *Server) latestFragment(w http.ResponseWriter, r *http.Request) {
	var buf bytes.Buffer
	_, tip := s.recent()
	if err := s.tmpl["home"].ExecuteTemplate(&buf, "latest", page{ChainID: s.c.ChainID(), Tip: tip, Data: s.homeData()}); err != nil {
		s.log.Error("render the latest blocks", "err", err)
		http.Error(w, "render failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(buf.Bytes())
}

// tipText is the newest height the explorer checked, as decimal text (0
// before the first); the pages poll it.
func (s *Server) tipText(w http.ResponseWriter, r *http.Request) {
	_, tip := s.recent()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	fmt.Fprint(w, tip)
}

// events streams the height of each block the explorer adds
// (server-sent events, event "block").
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		s.fail(w, r, http.StatusNotImplemented, "this connection cannot stream events")
		return
	}
	ch := s.subscribe()
	defer s.unsubscribe(ch)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	if _, tip := s.recent(); tip > 0 {
		fmt.Fprintf(w, "event: block\ndata: %d\n\n", tip)
	}
	fl.Flush()
	keep := time.NewTicker(15 * time.Second)
	defer keep.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.done:
			return
		case h := <-ch:
			fmt.Fprintf(w, "event: block\ndata: %d\n\n", h)
		case <-keep.C:
			fmt.Fprint(w, ": keep-alive\n\n")
		}
		fl.Flush()
	}
}

// blockData is a block page's.
type blockData struct {
	Block      chainview.Block
	Prev, Next int64 // 0: none
}

func (s *Server) block(w http.ResponseWriter, r *http.Request) {
	arg := r.PathValue("height")
	h, err := strconv.ParseInt(arg, 10, 64)
	if err != nil || h < 1 {
		s.fail(w, r, http.StatusBadRequest, fmt.Sprintf("block %q: give a height, a positive integer", arg))
		return
	}
	blocks, _ := s.recent()
	var v *chainview.Block
	for i := range blocks {
		if blocks[i].Height == h {
			v = &blocks[i]
		}
	}
	if v == nil {
		ctx, cancel := s.ctx(r)
		defer cancel()
		b, err := s.c.Block(ctx, h)
		if err != nil {
			s.nodeFail(w, r, fmt.Sprintf("block %d", h), err)
			return
		}
		d := chainview.DescribeBlock(b)
		v = &d
	}
	d := blockData{Block: *v, Next: h + 1}
	if h > 1 {
		d.Prev = h - 1
	}
	s.render(w, r, http.StatusOK, "block", fmt.Sprintf("Block %d", h), d)
}

func (s *Server) tx(w http.ResponseWriter, r *http.Request) {
	arg := r.PathValue("hash")
	hash, err := parseHash(arg)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, fmt.Sprintf("transaction %q: want its hash, 64 hex digits (0x optional)", arg))
		return
	}
	ctx, cancel := s.ctx(r)
	defer cancel()
	info, err := s.c.Tx(ctx, hash)
	if err != nil {
		s.nodeFail(w, r, fmt.Sprintf("transaction %X", hash), err)
		return
	}
	s.render(w, r, http.StatusOK, "tx", "Transaction "+short(fmt.Sprintf("%X", hash)), chainview.DescribeTxInfo(info))
}

// accountData is an account page's.
type accountData struct {
	Address, Hex string
	Account      api.Account
	Height       int64
	Ledger       *api.StakeLedger
	IsWorker     bool
	IsContract   bool
	Txs          []chainview.Tx // in the kept blocks, from or to it
}

func (s *Server) account(w http.ResponseWriter, r *http.Request) {
	pk, err := parseKey("account", r.PathValue("addr"))
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err.Error())
		return
	}
	ctx, cancel := s.ctx(r)
	defer cancel()
	d := accountData{Address: pk.Address(), Hex: pk.Hex()}
	var wg sync.WaitGroup
	var lerr error
	wg.Add(2)
	go func() {
		defer wg.Done()
		d.Ledger, _, lerr = s.c.StakeLedger(ctx, pk)
	}()
	go func() {
		defer wg.Done()
		_, werr := s.c.Worker(ctx, pk)
		d.IsWorker = werr == nil
	}()
	d.Account, d.Height, err = s.c.AccountProved(ctx, pk)
	if _, cerr := s.c.Contract(ctx, pk); cerr == nil {
		d.IsContract = true
	}
	wg.Wait()
	if err = errors.Join(err, lerr); err != nil {
		s.nodeFail(w, r, "account "+pk.Address(), err)
		return
	}
	blocks, _ := s.recent()
	for _, b := range blocks {
		for _, t := range b.Txs {
			if t.Signer == d.Address || t.Fields["to"] == d.Address || t.Fields["from"] == d.Address {
				d.Txs = append(d.Txs, t)
			}
		}
	}
	s.render(w, r, http.StatusOK, "account", "Account "+pk.Address(), d)
}

// workerRow is one worker of the workers page, or the worker page's.
type workerRow struct {
	ID           crypto.PublicKey
	Rec          *api.WorkerRecord
	Measurement  string
	Active       bool
	Revoked      bool
	Height       int64
	Stake        api.NodeStake
	Gatekeeper   bool
	Era          uint64
	Activity     api.Activity
	Contracts    []crypto.PublicKey // of those seen, the ones it runs
	AttestedTime time.Time
}

// readWorker reads a worker's registration and stake (proved), and whether
// its measurement is still allowed.
func (s *Server) readWorker(ctx context.Context, id crypto.PublicKey, settings *api.AttestationSettings) (*workerRow, error) {
	var wg sync.WaitGroup
	row := &workerRow{ID: id}
	var serr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		row.Stake, _, serr = s.c.NodeStake(ctx, id)
	}()
	rec, h, err := s.c.WorkerProved(ctx, id)
	wg.Wait()
	if err != nil {
		return nil, err
	}
	if serr != nil {
		return nil, serr
	}
	row.Rec, row.Height = rec, h
	row.Measurement = "0x" + hex.EncodeToString(rec.Measurement)
	row.Revoked = !settings.MeasurementAllowed(rec.Measurement)
	row.Active = rec.Active(h) && !row.Revoked
	row.AttestedTime = time.Unix(rec.AttestedAt, 0).UTC()
	return row, nil
}

func (s *Server) workers(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := s.ctx(r)
	defer cancel()
	ids, err := s.c.WorkerIDs(ctx)
	if err != nil {
		s.nodeFail(w, r, "the registered workers", err)
		return
	}
	settings, err := s.c.AttestationSettings(ctx)
	if err != nil {
		s.nodeFail(w, r, "the attestation settings", err)
		return
	}
	rows := make([]*workerRow, len(ids))
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rows[i], errs[i] = s.readWorker(ctx, id, settings)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		s.nodeFail(w, r, "the registered workers", err)
		return
	}
	s.render(w, r, http.StatusOK, "workers", "Workers", rows)
}

func (s *Server) worker(w http.ResponseWriter, r *http.Request) {
	id, err := parseKey("worker", r.PathValue("id"))
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err.Error())
		return
	}
	ctx, cancel := s.ctx(r)
	defer cancel()
	settings, err := s.c.AttestationSettings(ctx)
	if err != nil {
		s.nodeFail(w, r, "the attestation settings", err)
		return
	}
	row, err := s.readWorker(ctx, id, settings)
	if err != nil {
		s.nodeFail(w, r, "worker "+id.Hex(), err)
		return
	}
	sched, _, err := s.c.EraSchedule(ctx)
	if err != nil {
		s.nodeFail(w, r, "the era schedule", err)
		return
	}
	row.Era = sched.EraOf(row.Height)
	if row.Activity, _, err = s.c.Activity(ctx, row.Era, id); err != nil {
		s.nodeFail(w, r, "the activity of worker "+id.Hex(), err)
		return
	}
	gks, err := s.c.Gatekeepers(ctx)
	if err != nil {
		s.nodeFail(w, r, "the gatekeepers", err)
		return
	}
	for _, g := range gks {
		row.Gatekeeper = row.Gatekeeper || g == id
	}
	for _, c := range s.knownContracts() {
		if rec, err := s.c.Contract(ctx, c); err == nil {
			for _, wk := range rec.Workers {
				if wk == id {
					row.Contracts = append(row.Contracts, c)
				}
			}
		}
	}
	s.render(w, r, http.StatusOK, "worker", "Worker "+short(id.Hex()), row)
}

// gatekeepersData is the gatekeepers page's.
type gatekeepersData struct {
	Gatekeepers []crypto.PublicKey
	MasterKey   string // "" until published
	Keys        *client.KeyStatus
	Commits     []string // the serving key set's public commitments
}

func (s *Server) gatekeepers(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := s.ctx(r)
	defer cancel()
	var d gatekeepersData
	var wg sync.WaitGroup
	var gerr, merr error
	var mk [32]byte
	var ok bool
	wg.Add(2)
	go func() { defer wg.Done(); d.Gatekeepers, gerr = s.c.Gatekeepers(ctx) }()
	go func() { defer wg.Done(); mk, ok, merr = s.c.MasterKey(ctx) }()
	ks, err := s.c.KeyStatus(ctx)
	wg.Wait()
	if err = errors.Join(err, gerr, merr); err != nil {
		s.nodeFail(w, r, "the gatekeepers and key sets", err)
		return
	}
	d.Keys = ks
	if ok {
		d.MasterKey = "0x" + hex.EncodeToString(mk[:])
	}
	if ks.Serving != nil {
		for _, c := range ks.Serving.Commits {
			d.Commits = append(d.Commits, "0x"+hex.EncodeToString(c[:]))
		}
	}
	s.render(w, r, http.StatusOK, "gatekeepers", "Gatekeepers and keys", d)
}

// contractData is a contract page's, and a row of the contracts page.
type contractData struct {
	ID               crypto.PublicKey
	Rec              *api.ContractRecord
	Checkpoint       *api.Checkpoint
	CheckpointHeight int64
	Err              string // the contracts page: a record that could not be read
}

func (s *Server) readContract(ctx context.Context, id crypto.PublicKey) (*contractData, error) {
	rec, err := s.c.Contract(ctx, id)
	if err != nil {
		return nil, err
	}
	cp, h, err := s.c.Checkpoint(ctx, id)
	if err != nil {
		return nil, err
	}
	return &contractData{ID: id, Rec: rec, Checkpoint: cp, CheckpointHeight: h}, nil
}

func (s *Server) contractList(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := s.ctx(r)
	defer cancel()
	var rows []*contractData
	for _, id := range s.knownContracts() {
		d, err := s.readContract(ctx, id)
		if err != nil {
			d = &contractData{ID: id, Err: err.Error()}
		}
		rows = append(rows, d)
	}
	s.render(w, r, http.StatusOK, "contracts", "Contracts", rows)
}

func (s *Server) contract(w http.ResponseWriter, r *http.Request) {
	id, err := parseKey("contract", r.PathValue("id"))
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err.Error())
		return
	}
	ctx, cancel := s.ctx(r)
	defer cancel()
	d, err := s.readContract(ctx, id)
	if err != nil {
		s.nodeFail(w, r, "contract "+id.Hex(), err)
		return
	}
	s.render(w, r, http.StatusOK, "contract", "Contract "+short(id.Hex()), d)
}

func (s *Server) queue(w http.ResponseWriter, r *http.Request) {
	blocks, _ := s.recent()
	s.render(w, r, http.StatusOK, "queue", "Message queue", blocks)
}

// paramsData is the parameters page's.
type paramsData struct {
	Params      [][2]string // name, value (as in the genesis' JSON)
	Height      int64
	Issuance    uint64
	Validators  []validatorRow
	Attestation *api.AttestationSettings
}

type validatorRow struct {
	Address string
	Power   int64
}

func (s *Server) params(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := s.ctx(r)
	defer cancel()
	pv, err := s.c.ProveRecent(ctx, api.QueryParams, nil)
	if err != nil {
		s.nodeFail(w, r, "the chain parameters", err)
		return
	}
	p, err := api.DecodeParams(pv.Value)
	if err != nil {
		s.nodeFail(w, r, "the chain parameters", err)
		return
	}
	d := paramsData{Height: pv.Height}
	for k, v := range paramFields(p) {
		d.Params = append(d.Params, [2]string{k, fmt.Sprint(v)})
	}
	sort.Slice(d.Params, func(i, j int) bool { return d.Params[i][0] < d.Params[j][0] })
	if d.Issuance, _, err = s.c.Issuance(ctx); err != nil {
		s.nodeFail(w, r, "the total issuance", err)
		return
	}
	if d.Attestation, err = s.c.AttestationSettings(ctx); err != nil {
		s.nodeFail(w, r, "the attestation settings", err)
		return
	}
	lb, err := s.c.LightBlock(ctx, pv.Height+1)
	if err != nil {
		s.nodeFail(w, r, "the validators", err)
		return
	}
	for _, v := range lb.ValidatorSet.Validators {
		d.Validators = append(d.Validators, validatorRow{Address: v.Address.String(), Power: v.VotingPower})
	}
	s.render(w, r, http.StatusOK, "params", "Chain parameters", d)
}

// paramFields returns p's fields by their JSON names, each value printed
// as in the genesis' JSON: integers exactly (json.Number, never a float
// such as 1e+08).
func paramFields(p api.Params) map[string]string {
	b, err := json.Marshal(p)
	if err != nil {
		return map[string]string{"error": err.Error()}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return map[string]string{"error": err.Error()}
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = fmt.Sprint(v)
	}
	return out
}

// search sends a height to its block, a hash to its transaction or block,
// a key to the contract, worker or account it names.
func (s *Server) search(w http.ResponseWriter, r *http.Request) {
	q, err := parseQuery(r.URL.Query().Get("q"))
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, "search: "+err.Error())
		return
	}
	to := func(path string) { http.Redirect(w, r, path, http.StatusSeeOther) }
	if q.Kind == queryHeight {
		to(fmt.Sprintf("/block/%d", q.Height))
		return
	}
	ctx, cancel := s.ctx(r)
	defer cancel()
	if q.Kind == queryHash {
		if _, err := s.c.RPC().Tx(ctx, q.Hash[:], false); err == nil {
			to(fmt.Sprintf("/tx/%X", q.Hash))
			return
		} else if !strings.Contains(err.Error(), "not found") {
			// CometBFT's answer for an unknown hash says "not found"
			// (as client.Tx reads it); anything else is the node failing.
			s.nodeFail(w, r, "search", err)
			return
		}
		if b, err := s.c.RPC().BlockByHash(ctx, q.Hash[:]); err == nil && b.Block != nil {
			to(fmt.Sprintf("/block/%d", b.Block.Height))
			return
		}
	}
	if q.HasKey {
		if _, err := s.c.Contract(ctx, q.Key); err == nil {
			to("/contract/" + q.Key.Hex())
			return
		}
		if _, err := s.c.Worker(ctx, q.Key); err == nil {
			to("/worker/" + q.Key.Hex())
			return
		}
		if q.Kind == queryAddress {
			to("/account/" + q.Key.Address())
			return
		}
		// 64 hex digits that are no transaction, block, contract or
		// worker: an account only if the chain knows it.
		a, _, err := s.c.AccountProved(ctx, q.Key)
		if err != nil {
			s.nodeFail(w, r, "search", err)
			return
		}
		if a != (api.Account{}) {
			to("/account/" + q.Key.Address())
			return
		}
	}
	if ctx.Err() != nil {
		s.nodeFail(w, r, "search", ctx.Err())
		return
	}
	// The lookups above fail alike for "not there" and "the node is
	// down": say "nothing" only if the node answers.
	if _, err := s.c.RPC().Status(ctx); err != nil {
		s.nodeFail(w, r, "search", err)
		return
	}
	s.fail(w, r, http.StatusNotFound, fmt.Sprintf("search: nothing on chain %s has the hash or key %s (no transaction, block, contract, worker or account with a balance)", s.c.ChainID(), r.URL.Query().Get("q")))
}

// short abbreviates a long hex string for titles.
func short(s string) string {
	if len(s) <= 14 {
		return s
	}
	return s[:10] + "…" + s[len(s)-4:]
}

// link is a hyperlink a template renders (Href empty: plain text).
type link struct{ Text, Href string }

// fieldLink links a call's field to the page of what it names (see
// chainview.DescribeCall for the keys).
func fieldLink(key string, v any) []link {
	switch key {
	case "to", "from", "operator":
		if s, ok := v.(string); ok {
			return []link{{s, "/account/" + s}}
		}
	case "contract":
		if s, ok := v.(string); ok {
			return []link{{s, "/contract/" + s}}
		}
	case "identity", "node":
		if s, ok := v.(string); ok {
			return []link{{s, "/worker/" + s}}
		}
	case "targets":
		if ts, ok := v.([]string); ok {
			var out []link
			for _, t := range ts {
				out = append(out, link{t, "/worker/" + t})
			}
			return out
		}
	case "origin":
		if s, ok := v.(string); ok {
			return []link{originLink(s)}
		}
	}
	return []link{{fmt.Sprint(v), ""}}
}

// originLink links a queue message's origin ("kind:0xkey").
func originLink(origin string) link {
	kind, key, ok := strings.Cut(origin, ":")
	if !ok {
		return link{origin, ""}
	}
	switch kind {
	case "account":
		return link{origin, "/account/" + key}
	case "worker", "gatekeeper":
		return link{origin, "/worker/" + key}
	case "contract":
		return link{origin, "/contract/" + key}
	}
	return link{origin, ""}
}

// sortedFields returns a call's fields by name.
func sortedFields(f map[string]any) []string {
	keys := make([]string, 0, len(f))
	for k := range f {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func parseTemplates() (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		"pha":       func(u uint64) string { return api.FormatAmount(u) + " " + api.TokenSymbol },
		"short":     short,
		"fieldLink": fieldLink,
		"origin":    originLink,
		"fields":    sortedFields,
		"hex":       func(b []byte) string { return "0x" + hex.EncodeToString(b) },
		"hash32":    func(b [32]byte) string { return "0x" + hex.EncodeToString(b[:]) },
		"time":      func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.000 UTC") },
	}
	pages, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	out := map[string]*template.Template{}
	for _, p := range pages {
		name := strings.TrimSuffix(strings.TrimPrefix(p, "templates/"), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", p)
		if err != nil {
			return nil, fmt.Errorf("explorer: template %s: %w", name, err)
		}
		out[name] = t
	}
	return out, nil
}
