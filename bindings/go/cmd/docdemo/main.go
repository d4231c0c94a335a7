// Command docdemo is the Go part of the documents step of `make demo`: it
// reopens the demo directory after the loader was killed and Python
// finished the load, then queries the "packages" collection (one document
// per Go standard-library package, from `go list -json std`): a filtered
// query sorted by a nested field, paged with cursors to the end; a
// multikey equality query; and each query's plan. It records what it saw
// in the "demo" collection for Python to check.
package main

import (
	"fmt"
	"os"

	keyval "github.com/keyval/keyval/bindings/go"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: docdemo DIR")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "docdemo:", err)
		os.Exit(1)
	}
}

func run(dir string) error {
	db, err := keyval.Open(dir)
	if err != nil {
		return err
	}
	defer db.Close()
	pkgs := db.Collection("packages")

	// Packages with at least 40 dependencies, most first, 25 per page.
	filter := map[string]any{"stats.deps": map[string]any{"$gte": 40}}
	opts := &keyval.FindOptions{Sort: []string{"-stats.deps"}, Limit: 25}
	plan, err := pkgs.Explain(filter, opts)
	if err != nil {
		return err
	}
	seen, pages := 0, 0
	var top []string
	var total uint64
	for {
		p, err := pkgs.Find(filter, opts)
		if err != nil {
			return err
		}
		pages++
		total = p.Total
		for _, d := range p.Docs {
			if len(top) < 3 {
				st := d["stats"].(map[string]any)
				top = append(top, fmt.Sprintf("%s (%v)", d["_id"], st["deps"]))
			}
		}
		seen += len(p.Docs)
		if !p.HasNext {
			break
		}
		opts.After = p.NextCursor
	}
	fmt.Printf("go: packages with >= 40 deps: %d in %d pages (total %d; plan %s on %q, sort %s); most: %v\n",
		seen, pages, total, plan.Plan, plan.Index, plan.Sort, top)
	if uint64(seen) != total {
		return fmt.Errorf("cursor pages visited %d of %d", seen, total)
	}

	// Multikey: packages that import net/http.
	imp := map[string]any{"Imports": "net/http"}
	n, err := pkgs.Count(imp)
	if err != nil {
		return err
	}
	iplan, err := pkgs.Explain(imp, nil)
	if err != nil {
		return err
	}
	fmt.Printf("go: packages importing net/http: %d (plan %s on %q, %d entries read)\n",
		n, iplan.Plan, iplan.Index, iplan.Entries)

	_, err = db.Collection("demo").Replace("go", map[string]any{"deps40": seen, "imports_net_http": n}, true)
	return err
}
