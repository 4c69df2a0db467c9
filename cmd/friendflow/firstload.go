package main

import "sync"

// firstLoad returns a channel closed by the first call of loaded: the
// engine holds callbacks that arrive before the first rules load.
func firstLoad() (<-chan struct{}, func()) {
	ch := make(chan struct{})
	var once sync.Once
	return ch, func() { once.Do(func() { close(ch) }) }
}
