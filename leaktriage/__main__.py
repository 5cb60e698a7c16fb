from leaktriage.cli.entry import main
main()
