// Command hello is the workload of the cluster VM tests, packed into an
// image by the test: "hello serve ADDR" answers HTTP with its host name,
// "hello get URL" prints what a URL answers.
package main

import (
	"fmt"
	"io"
	"net/http"
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
		c := &http.Client{Timeout: 10 * time.Second}
		var err error
		for range 30 { // the Service may need a moment to reach the proxy rules
			var resp *http.Response
			if resp, err = c.Get(os.Args[2]); err == nil {
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				os.Stdout.Write(body)
				// get URL WANT: succeed only if the answer says WANT.
				if len(os.Args) > 3 && !strings.Contains(string(body), os.Args[3]) {
					fmt.Fprintf(os.Stderr, "hello: the answer lacks %q\n", os.Args[3])
					os.Exit(3)
				}
				return
			}
			time.Sleep(2 * time.Second)
		}
		fmt.Fprintln(os.Stderr, "hello:", err)
		os.Exit(1)
	}
	os.Exit(2)
}
