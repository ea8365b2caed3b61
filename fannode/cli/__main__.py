from fannode.cli.main import main

main()
