// Command hello is the workload of the cluster VM tests, packed into an
// image by the test: "hello serve ADDR" answers HTTP with its host name,
// "hello get URL" prints what a URL answers.
package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"strings"
	"time"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: hello serve ADDR | hello get URL")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "serve":
		host, _ := os.Hostname()
		fmt.Println("hello: serving on", os.Args[2])
		http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			fmt.Printf("hello: %s %s from %s\n", r.Method, r.URL.Path, r.RemoteAddr)
			fmt.Fprintf(w, "hello from %s\n", host)
		})
		fmt.Fprintln(os.Stderr, http.ListenAndServe(os.Args[2], nil))
		os.Exit(1)
	case "get":
		get(os.Args[2], os.Args[3:])
	}
	os.Exit(2)
}

// get prints what url answers and, on stderr, where the answer came from;
// with want, it exits 3 when the answer lacks it. It tries for a minute,
// as a Service may need a moment to reach the proxy rules.
func get(url string, want []string) {
	c := &http.Client{Timeout: 10 * time.Second}
	var err error
	for range 30 {
		var from string
		trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { from = i.Conn.RemoteAddr().String() }}
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", url, nil)
		var resp *http.Response
		if resp, err = c.Do(req); err == nil {
			body, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			os.Stdout.Write(body)
			fmt.Fprintf(os.Stderr, "hello: GET %s: %s from %s, %d bytes (read error: %v)\n", url, resp.Status, from, len(body), rerr)
			if len(want) > 0 && !strings.Contains(string(body), want[0]) {
				fmt.Fprintf(os.Stderr, "hello: the answer lacks %q\n", want[0])
				os.Exit(3)
			}
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "hello:", err)
		time.Sleep(2 * time.Second)
	}
	os.Exit(1)
}
