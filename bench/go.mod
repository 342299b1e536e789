module github.com/ipcchan/go/bench

go 1.26.0

replace github.com/ipcchan/go => ../

require (
	github.com/cloudwego/shmipc-go v0.2.0
	github.com/ipcchan/go v0.0.0
	github.com/james-barrow/golang-ipc v1.2.4
	go.uber.org/goleak v1.3.0
	golang.org/x/sys v0.50.0
)

require (
	github.com/Microsoft/go-winio v0.6.1 // indirect
	github.com/bytedance/gopkg v0.0.0-20220817015305-b879a72dc90f // indirect
	github.com/go-ole/go-ole v1.2.6 // indirect
	github.com/power-devops/perfstat v0.0.0-20210106213030-5aafc221ea8c // indirect
	github.com/shirou/gopsutil/v3 v3.22.1 // indirect
	github.com/yusufpapurcu/wmi v1.2.2 // indirect
	golang.org/x/mod v0.10.0 // indirect
	golang.org/x/tools v0.9.1 // indirect
)
