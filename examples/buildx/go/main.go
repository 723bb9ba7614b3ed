// Command hello-go prints the architecture it was compiled for.
package main

import (
	"fmt"
	"runtime"
)

func main() {
	fmt.Printf("hello from go on %s\n", runtime.GOARCH)
}
