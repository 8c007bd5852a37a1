package main

import "github.com/spf13/cobra"

func benchCmd() *cobra.Command {
	return &cobra.Command{Use: "bench", Short: "Submit signed transfers to a running node and report committed transfers/s", Hidden: true}
}
