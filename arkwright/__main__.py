from arkwright.cli import main

main()
