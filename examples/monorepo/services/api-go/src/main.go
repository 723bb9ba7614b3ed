package main

/*
#cgo CFLAGS: -I${SRCDIR}/deps/libs/greet:lib
#cgo LDFLAGS: -L${SRCDIR}/deps/libs/greet:lib -lgreet
#include <stdlib.h>
#include "greet.h"
*/
import "C"

import (
	"fmt"
	"unsafe"
)

func main() {
	buf := make([]byte, 128)
	who := C.CString("api-go")
	defer C.free(unsafe.Pointer(who))
	n := C.greet((*C.char)(unsafe.Pointer(&buf[0])), C.int(len(buf)), who)
	fmt.Printf("api-go: %s\n", buf[:n])
}
