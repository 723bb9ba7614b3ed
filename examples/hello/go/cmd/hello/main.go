// Command hello prints the architecture it was built for.
package main

import (
	"fmt"
	"runtime"
)

func main() {
	fmt.Printf("hello from go on %s\n", runtime.GOARCH)
}
